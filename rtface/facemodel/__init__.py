"""Population face model (mean face, pose response, identity modes as MediaPipe perceives them) and per-person
face shape estimation. Owned by the canonical stage; read by the AU stage for its noise floors."""
