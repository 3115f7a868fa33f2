"""--mixed_precision=bf16: refused where the CPU cannot do it, scoped to the run, and real."""

import tfa_suite  # noqa: F401  isort: skip

import csv
import os

import pytest
import tensorflow as tf

from tfa_suite.errors import UserError
from tfa_suite.precision import check_supported, cpu_flags, graph_precision
from tfa_suite.run.train import train

OPTION = "auto_mixed_precision_onednn_bfloat16"
HAS_BF16 = bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def rewrite_on() -> bool:
    return bool(tf.config.optimizer.get_experimental_options().get(OPTION, False))


def test_unknown_mode_is_refused():
    with pytest.raises(UserError, match="--mixed_precision must be off or bf16"):
        check_supported("fp16", flags={"avx512_bf16"})


def test_bf16_is_refused_on_a_cpu_without_bfloat16_instructions():
    with pytest.raises(UserError, match="AVX512-BF16 or AMX"):
        check_supported("bf16", flags={"avx2", "avx512f"})
    check_supported("bf16", flags={"amx_bf16"})
    check_supported("off", flags=set())


def test_the_rewrite_is_on_only_inside_the_block_even_on_error():
    assert not rewrite_on()
    with pytest.raises(RuntimeError), graph_precision("bf16"):
        assert rewrite_on()
        raise RuntimeError("boom")
    assert not rewrite_on()
    with graph_precision("off"):
        assert not rewrite_on()


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no bfloat16 instructions")
def test_bf16_run_trains_with_different_numerics_and_restores_the_setting(tmp_path, tiny_config):
    def run(name: str, mode: str) -> list[str]:
        root = str(tmp_path / name)
        config = tiny_config(
            root,
            backend="graph",
            fc_layers=[32],
            initial_collect_steps=64,
            train_steps_per_iteration=2,
            batch_size=32,
            mixed_precision=mode,
        )
        result = train(config)
        assert result.env_steps >= 400
        with open(os.path.join(root, "metrics.csv"), newline="") as f:
            return [row["loss"] for row in csv.DictReader(f)]

    full = run("float32", "off")
    half = run("bf16", "bf16")
    assert not rewrite_on()
    # Same seed and data path: only the matmul precision differs, so the losses must too
    # (identical losses would mean the rewrite never applied).
    assert len(full) == len(half) and full != half
    assert all(float(v) < 10 for v in half)
