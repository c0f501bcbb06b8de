"""The contract between a pipeline's SDK and the server, standard library only: the vocabulary
(step types, statuses, capture levels, required metrics), the limits, the metric rules and the
bounding of text and JSON. The server imports these; nothing here is defined twice."""
