"""Full-time recording (全程录像): ffmpeg per camera, segment index, retention, playback, signed evidence."""
