from qthumb.workers.tasks.consumer import main

main()
