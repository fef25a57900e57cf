"""Business rules; each public function is one use case and commits once."""
