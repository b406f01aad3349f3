/* provisioner.c: being written */
