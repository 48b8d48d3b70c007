"""Log files: streaming decoders (``decoders``) and pino / NestJS normalisation (``pino``)."""
