broken_loaded=yes
