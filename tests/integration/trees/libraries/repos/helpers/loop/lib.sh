loop_loaded=yes
