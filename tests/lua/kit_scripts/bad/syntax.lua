return { execution = function( }
