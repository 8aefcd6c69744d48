"""core.pipelines."""
