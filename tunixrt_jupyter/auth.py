"""Credentials passed to a run's process environment, never to its folder or the catalog."""

from __future__ import annotations

import os

AUTH_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY")


def auth_env() -> dict[str, str]:
    """Known auth variables of this process; env.auth_env adds Colab secrets when asked."""
    try:
        from .env import auth_env as detect
    except ImportError:
        return {k: os.environ[k] for k in AUTH_VARS if k in os.environ}
    return detect()
