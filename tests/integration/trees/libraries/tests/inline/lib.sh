inline_loaded=yes
