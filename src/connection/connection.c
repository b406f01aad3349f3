/* connection.c: being written */
