// preload.cpp: what libmoss_preload.so adds to the linked patch layer.
