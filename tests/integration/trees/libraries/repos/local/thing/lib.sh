thing_loaded=yes
