/* yaml.c: not written yet */
