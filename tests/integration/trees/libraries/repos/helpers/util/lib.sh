util_loaded=yes
