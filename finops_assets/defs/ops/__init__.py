"""ops/pipeline_health: the pipeline's own service level indicators."""
