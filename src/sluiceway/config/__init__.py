from sluiceway.config.loader import dump_config, load_config
from sluiceway.config.model import Config

__all__ = ["Config", "dump_config", "load_config"]
