"""examples/quickstart.ipynb runs, top to bottom, in a real Jupyter kernel (nbclient), on a
tiny budget: its parameters cell is the one thing the test changes."""

from __future__ import annotations

import pathlib

import nbformat
from nbclient import NotebookClient

REPO = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs_in_a_kernel(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    [parameters] = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    parameters.source = f'NUM_ENV_STEPS = 2_000\nROOT_DIR = "{tmp_path / "quickstart"}"\n'
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "env steps, solved:" in text and "return" in text
    assert "on a new episode" in text
    kinds = {
        k for o in outputs if o.output_type in ("display_data", "execute_result") for k in o.data
    }
    assert "image/png" in kinds and "text/html" in kinds  # the curve and the video
    assert (tmp_path / "quickstart" / "policy" / "saved_model.pb").is_file()
