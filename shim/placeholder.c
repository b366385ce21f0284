int ms_placeholder;
