"""Recording a run: its metrics file, and its SwanLab run."""
