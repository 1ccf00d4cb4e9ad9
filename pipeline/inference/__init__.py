"""Predicting new video files with a trained head, outside DVC and without touching the dataset's caches.

    VIDEO... ─plan─> the caches the head reads and everything upstream of them (decode, faces, extractors)
             ─extract─> a temporary cache folder, filled in-process by the stages' own per-video functions
             ─predict─> FeatureTable over that folder ─> load_trained + training.predict ─> records
"""
