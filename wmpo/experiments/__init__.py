"""End-to-end recipes: the small-scale experiment (demonstrations → SFT → budget → world model → reward model →
WMPO and the GRPO-in-simulator baseline → real evaluation)."""
