"""The TypeScript SDK's vocabulary is generated from the Python contract, never retyped: the
committed file must be exactly what the generator writes today."""

from pathlib import Path

from xray_sdk.contract import typescript

ROOT = Path(__file__).resolve().parent.parent


def test_the_committed_typescript_vocabulary_is_what_the_contract_generates():
    committed = (ROOT / typescript.GENERATED_PATH).read_text(encoding="utf-8")
    assert committed == typescript.render(), (
        "xray-sdk-js/src/vocabulary.generated.ts differs from xray_sdk/contract/: "
        "run `python -m xray_sdk.contract.typescript --write` and commit the result"
    )


def test_the_generated_vocabulary_carries_every_step_type_and_limit():
    text = typescript.render()
    for step_type in ("llm", "search", "filter", "rank", "select", "custom"):
        assert f'"{step_type}"' in text
    assert "maxEventsPerBatch: 1000," in text
    assert '"filter": ["candidates_in", "candidates_out", "drop_ratio"]' in text
