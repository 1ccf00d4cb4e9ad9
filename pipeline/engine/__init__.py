"""The engine every per-video stage runs on (decode, faces, features):

    cluster.py       a LocalCluster or a running scheduler (`ClusterConfig`)
    dask_map.py      map a function over groups of videos; a bad video fails alone, a crash is retried
    cached.py        skip the videos already in the stage's cache, write the rest as results arrive
    summary.py       the stage's counts and failure list
    worker_state.py  what a worker keeps between tasks: built networks, open cache readers
    worker_env.py    the workers' memory allocator
"""
