"""Feed adapters: fetching bodies over HTTP (fetch, guard) and parsing them (parse)."""
