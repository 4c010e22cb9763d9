"""Tables, figures, the paper's published numbers (``data/paper.yaml``) and the report's landing page. TF-free."""
