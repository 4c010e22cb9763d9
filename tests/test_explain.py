"""The summary page's one sentence per variant: why it is fast or slow on the CPU it ran on."""

from mobopt.report import explain

VNNI = {"model": "AMD EPYC", "arch": "x86_64", "isa": ["avx2", "avx512f", "avx512_vnni"],
        "int8_dot_product": ["AVX-512 VNNI (vpdpbusd)"]}
AVX2 = {"model": "AMD EPYC", "arch": "x86_64", "isa": ["avx2", "fma"], "int8_dot_product": []}


def _row(variant, p50, nodes=100, delegated=99, partitions=2, status="ok"):
    return {"experiment": "vit", "model": "ViT", "device": "host_1t", "variant": variant, "status": status,
            "p50_ms": p50, "nodes": nodes, "delegated_nodes": delegated, "partitions": partitions, "flags": ""}


def test_int8_slower_on_a_cpu_without_dot_products_says_why():
    base, q = _row("float32", 1.0), _row("int8", 1.9, nodes=246, delegated=192, partitions=39)
    text = explain.sentence(q, base, AVX2)
    assert "1.90x slower than float32" in text and "39 partitions (float32: 2)" in text
    assert "54 of 246 ops on LiteRT's own kernels" in text and "no int8 dot-product instructions" in text


def test_int8_faster_with_vnni_names_the_instructions():
    text = explain.sentence(_row("int8", 0.5, partitions=1, delegated=100), _row("float32", 1.0), VNNI)
    assert "2.00x faster than float32" in text and "AVX-512 VNNI (vpdpbusd)" in text and "ops on LiteRT" not in text


def test_equal_speed_unsupported_and_unknown_cpu():
    assert "as fast as float32" in explain.sentence(_row("dynamic_int8", 1.02), _row("float32", 1.0), VNNI)
    refused = {**_row("int16x8", None), "status": "not supported", "flags": "not supported: NEG"}
    assert explain.sentence(refused, _row("float32", 1.0), VNNI) == "int16x8: not supported: NEG."
    phone = explain.sentence(_row("int8", 0.5), _row("float32", 1.0), {})  # a phone: its CPU was not recorded
    assert "dot-product" not in phone and "faster" in phone
    assert "reference kernels" in explain.sentence(_row("int16x8", 30.0, delegated=0, partitions=0), _row("float32", 1.0), AVX2)


def test_sentences_put_float32_first_and_pick_each_devices_cpu():
    rows = [_row("int8", 1.9), _row("float32", 1.0), {**_row("float32", 2.0), "device": "android"},
            {**_row("int8", 1.0), "device": "android"}]
    out = explain.sentences(rows, {"host_1t": AVX2})
    assert [(d, s.split(" ")[0]) for _, d, s in out] == [("android", "float32"), ("android", "int8"),
                                                          ("host_1t", "float32"), ("host_1t", "int8")]
    assert "dot-product" not in out[1][2] and "no int8 dot-product" in out[3][2]


def test_publishing_a_run_copies_what_the_workflow_wrote_and_labels_the_host(tmp_path):
    import json

    from mobopt.common import cpuinfo
    from mobopt.report import publish

    run = tmp_path / "run"
    (run / "reports/tables").mkdir(parents=True)
    (run / "reports/figures").mkdir()
    (run / "results/bench/host_1t/vit").mkdir(parents=True)
    (run / "reports/tables/table2.csv").write_text("model,variant,device,size,accuracy,p50_ms,p95_ms,partitions\n"
                                                    "ViT,float32,host_1t,3.5 MB,0.9,0.61,0.66,2\n")
    (run / "reports/tables/table2.md").write_text("| model |\n")
    for name in ("second_study", "search_host_1t"):
        (run / f"reports/tables/{name}.md").write_text("| model |\n")
    (run / "reports/figures/size.png").write_bytes(b"\x89PNG")
    (run / "reports/summary.html").write_text("<html></html>")
    cpu = cpuinfo.parse("model name\t: AMD EPYC\nflags\t\t: avx2 fma avx512f avx512_vnni\n", "x86_64")
    prov = {"created_utc": "2026-12-01T10:00:00+00:00", "cpu": cpu, "git": {"commit": "abc", "dirty": False},
            "packages": {"ai-edge-litert": "2.3.0"}, "python": "3.11.7", "cpu_count": 2, "platform": "Linux"}
    (run / "results/bench/host_1t/vit/float32.json").write_text(json.dumps({"provenance": prov}))
    dest = publish.publish(run, tmp_path / "docs", "fashion_mnist", "snakemake --cores 2")
    assert dest.name == "2026-12-01-fashion_mnist-amd-epyc-vnni"
    assert (dest / "tables/table2.csv").exists() and (dest / "figures/size.png").exists() and (dest / "summary.html").exists()
    assert (dest / "tables/second_study.md").exists() and (dest / "tables/search_host_1t.md").exists()
    text = (dest / "README.md").read_text()
    assert "avx512_vnni" in text and "int8 dot product: AVX-512 VNNI" in text and "| ViT | float32 | host_1t |" in text
    assert "![size.png](figures/size.png)" in text and "commit: abc" in text
    again = publish.publish(run, tmp_path / "docs", "fashion_mnist", "snakemake --cores 2")
    assert again == dest and sorted(p.name for p in dest.iterdir()) == ["README.md", "figures", "provenance.json",
                                                                          "summary.html", "tables"]
