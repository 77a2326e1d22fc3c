"""Model registries: one interface (``base.ModelRegistry``), one scheme table
(``schemes``) and a backend per kind; used by the lineage, evaluate and promote steps,
the report and the CLI."""
