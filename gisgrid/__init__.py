"""gisgrid: GIS platform for safety-production grid management (安全生产网格化管理)."""

__version__ = "0.1.0"
