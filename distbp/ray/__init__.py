"""distbp.ray: the parameter-server backend on Ray (`distbp train --backend ray`, whose training
side is distbp/train/ray_trainer.py; nothing here imports distbp.train).

    launch.py  run_ray: connect or start Ray, create the actors, restart from checkpoints on failure
    server.py  ParameterServer actor: one shard of the parameters and its optimizer state
    worker.py  ParameterServerSync (the push/pull update strategy) and the Worker actor
    comm.py    RayCommunicator for the small collectives (metrics, evaluation, barriers)
    shards.py  how parameters and optimizer state are split over the servers (parallel/flat.py)
"""
