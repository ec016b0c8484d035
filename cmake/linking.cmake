# How the duplex binary is linked so that a client starts fast (every `duplex exec` pays the
# dynamic loader's work before it touches the network).
function(duplex_fast_start target)
endfunction()
