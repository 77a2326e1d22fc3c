"""A step's UI view (``Published``) reaches real kfp output objects through ``publish``."""

import pytest
from kfp.dsl import HTML, ClassificationMetrics, Markdown, Metrics, Model

from components.common.publish import Published, publish


def test_publish_puts_metadata_metrics_matrix_and_pages_on_the_outputs(tmp_path):
    (tmp_path / "report.md").write_text("# report")
    published = Published(metadata={"decision": "promote"}, metrics={"accuracy": 0.9},
                          pages={"report": str(tmp_path / "report.md")},
                          confusion_matrix=(["a", "b"], [[3, 1], [0, 4]]))
    model = Model(name="m", uri=str(tmp_path / "model"))
    metrics = Metrics(name="metrics", uri=str(tmp_path / "metrics"))
    matrix = ClassificationMetrics(name="cm", uri=str(tmp_path / "cm"))
    report = Markdown(name="report", uri=str(tmp_path / "ui-report"))
    publish(published, model, metrics=metrics, confusion_matrix=matrix, report=report)
    assert model.metadata == {"decision": "promote"}
    assert metrics.metadata == {"accuracy": 0.9}
    assert matrix.metadata["confusionMatrix"]["rows"] == [{"row": [3, 1]}, {"row": [0, 4]}]
    assert (tmp_path / "ui-report").read_text() == "# report"


def test_an_output_left_out_or_extra_is_named():
    with pytest.raises(TypeError, match=r"needs the outputs \['curves', 'metrics'\]"):
        publish(Published(metrics={"loss": 1.0}, pages={"curves": "c.html"}), Model(name="m"),
                metrics=Metrics(name="metrics"), page=HTML(name="page"))
