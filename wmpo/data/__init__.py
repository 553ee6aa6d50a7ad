"""Data conversions: robomimic/MimicGen HDF5 to episode shards, and OpenVLA-format action statistics."""
