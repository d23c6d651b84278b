"""distbp.ray: the parameter-server backend on Ray (`distbp train --backend ray`).

    launch.py  run_ray: connect or start Ray, create the actors, restart from checkpoints on failure
    server.py  ParameterServer actor: one shard of the parameters and its optimizer state
    worker.py  RayTrainer (the Trainer with push/pull instead of all-reduce) and the Worker actor
    comm.py    RayCommunicator for the small collectives (metrics, evaluation, barriers)
    shards.py  how parameters and optimizer state are split over the servers
"""
