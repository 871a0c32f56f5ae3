"""leadgenius-etl: move B2B leads into and out of LeadGenius Pro, safely and fast."""

__version__ = "0.1.0"
