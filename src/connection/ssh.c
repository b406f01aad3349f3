/* ssh.c: being written */
