"""The CPU facts every result records: the features that decide whether int8 is fast."""

from mobopt.common import cpuinfo, provenance

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16
processor\t: 1
model name\t: AMD EPYC
"""
AVX2_ONLY = "model name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma\n"
PHONE = """processor\t: 0
BogoMIPS\t: 52.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd0b
Hardware\t: MT6785V/CD
"""


def test_x86_features_and_the_int8_dot_product():
    info = cpuinfo.parse(X86, "x86_64")
    assert info["model"] == "AMD EPYC" and info["family"] == "25" and info["model_number"] == "17"
    assert info["isa"] == ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                           "avx512_bf16"]
    assert info["int8_dot_product"] == ["AVX-512 VNNI (vpdpbusd)"]
    assert cpuinfo.parse(AVX2_ONLY, "x86_64")["int8_dot_product"] == []
    assert "int8 dot product: none" in cpuinfo.summary(cpuinfo.parse(AVX2_ONLY, "x86_64"))


def test_a_phones_cpu_with_the_dot_product_extension():
    info = cpuinfo.parse(PHONE)
    assert info["arch"] == "aarch64" and info["part"] == "0xd0b" and info["model"] == "MT6785V/CD"
    assert info["isa"] == ["asimd", "asimdhp", "asimddp"] and info["int8_dot_product"] == ["Arm dot product (SDOT/UDOT)"]


def test_every_result_records_the_cpu_features():
    cpu = provenance.collect()["cpu"]
    assert set(cpu) >= {"model", "arch", "isa", "int8_dot_product"} and isinstance(cpu["isa"], list)
    assert cpuinfo.describe("/nonexistent")["isa"] == []
