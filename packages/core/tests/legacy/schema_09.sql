-- The task table of aipartnerupflow 0.9.0 (PyPI), written from its SQLAlchemy model
-- aipartnerupflow/core/storage/sqlalchemy/models.py (class TaskModel, table "apflow_tasks",
-- created by Base.metadata.create_all: the project had no migrations). Column names, types,
-- defaults and the indexed columns follow that model: String(255)/String(100)/String(50),
-- Integer, JSON, Text, Numeric(3, 2), DateTime(timezone=True), Boolean, and index=True on id,
-- parent_id, user_id, name, original_task_id and has_copy (SQLAlchemy names them
-- ix_<table>_<column>). The same statements run on DuckDB and PostgreSQL.
CREATE TABLE apflow_tasks (
    id VARCHAR(255) NOT NULL,
    parent_id VARCHAR(255),
    user_id VARCHAR(255),
    name VARCHAR(100) NOT NULL,
    status VARCHAR(50),
    priority INTEGER,
    dependencies JSON,
    inputs JSON,
    params JSON,
    result JSON,
    error TEXT,
    schemas JSON,
    progress NUMERIC(3, 2),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
    started_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
    completed_at TIMESTAMP WITH TIME ZONE,
    has_children BOOLEAN,
    original_task_id VARCHAR(255),
    has_copy BOOLEAN,
    PRIMARY KEY (id)
);
CREATE INDEX ix_apflow_tasks_id ON apflow_tasks (id);
CREATE INDEX ix_apflow_tasks_parent_id ON apflow_tasks (parent_id);
CREATE INDEX ix_apflow_tasks_user_id ON apflow_tasks (user_id);
CREATE INDEX ix_apflow_tasks_name ON apflow_tasks (name);
CREATE INDEX ix_apflow_tasks_original_task_id ON apflow_tasks (original_task_id);
CREATE INDEX ix_apflow_tasks_has_copy ON apflow_tasks (has_copy);
