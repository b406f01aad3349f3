/* podman.c: being written */
