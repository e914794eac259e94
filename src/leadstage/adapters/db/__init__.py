"""Database adapter: SQLAlchemy Core tables, repositories, the unit of work and set-based bulk paths."""
