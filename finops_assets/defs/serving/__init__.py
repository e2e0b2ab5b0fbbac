"""The serving zone: published after each successful run for readers (lib/serving.py)."""
