from workers.consumer import main

main()
