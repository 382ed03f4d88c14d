"""Test settings shared by every test module: offline Hub, deterministic threads, and the upstream markers."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

UPSTREAM_MARKERS = (
    "slow",
    "generate",
    "is_pipeline_test",
    "torch_compile_test",
    "torch_export_test",
    "onnx_export_test",
    "executorch_export_test",
    "flash_attn_test",
    "flash_attn_3_test",
    "flash_attn_4_test",
    "accelerate_tests",
    "timeout",
)


def pytest_configure(config):
    for marker in UPSTREAM_MARKERS:
        config.addinivalue_line("markers", f"{marker}: marker used by transformers' upstream test mixins")
