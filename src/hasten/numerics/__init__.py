"""Low-precision number formats: FP8 linears with static scales and their numerics diagnostic."""
