from qthumb.workers.consumer import main

main()
