"""The README a new user reads first: its code fences close, its first example says what an
entity is and does not lean on a return value, and the folders it and the design card name exist."""

import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_code_fence_opens_and_closes_on_a_line_of_its_own():
    fences = [line for line in README.splitlines() if "```" in line]
    assert all(line.lstrip().startswith("```") and line.strip().count("```") == 1 for line in fences), [
        line for line in fences if not line.lstrip().startswith("```") or line.strip().count("```") != 1
    ]
    assert len(fences) % 2 == 0


def test_the_first_example_defines_the_entity_and_records_a_model_without_relying_on_its_return():
    example = README.split("```python", 1)[1].split("```", 1)[0]
    assert "entity" in example
    assert ") and " not in example  # `step.model(...) and llm(...)` relied on model() being truthy


def test_the_demo_lives_in_demo_and_installs_as_xray_demo():
    assert (ROOT / "demo" / "pipeline.py").exists() and not (ROOT / "xray_demo").exists()
    assert Path(importlib.import_module("xray_demo").__file__).resolve().parent == ROOT / "demo"
