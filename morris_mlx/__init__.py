"""morris_mlx: teach a chat model to write in one writer's voice, Apple-native."""

__version__ = "0.1.0"
