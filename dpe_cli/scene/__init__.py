"""What a video holds, found in the detection pass: its shots, the face tracks in each shot,
and the people those tracks belong to."""
