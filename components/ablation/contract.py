"""The ablation report's ``table`` artifact: its files, by name."""

ROWS_FILE = "ablation.json"  # one row per cell (mean and std over seeds, significance)
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"  # self-contained: the table and the overlaid curves
