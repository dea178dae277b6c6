/* deadlock.c — the deadlock Go reports (tour "Buffered Channels", overfilled), in ringo.
 *
 *     func main() {
 *         ch := make(chan int, 2)
 *         ch <- 1
 *         ch <- 2
 *         ch <- 3 // nobody will ever receive: fatal error
 *     }
 *
 * The third send blocks forever and nothing else can run, so the runtime prints, as Go does,
 *
 *     fatal error: all goroutines are asleep - deadlock!
 *
 *     thread 12345 [chan send]:
 *     	main thread
 *     	#0 slow_path+0x1a8 (libringo.so.0+0x14108)
 *     	#1 main+0x3b (deadlock+0x10bb)
 *     	...
 *
 * and exits with status 2. (main() is a plain thread, not a goroutine: it is listed by its
 * thread id, marked as the main thread, with the frames it is blocked in under it.)
 */
#include <ringo.h>
#include <stdio.h>

int main(void)
{
    ringo_chan *ch = ringo_chan_make(sizeof(int), 2);
    if (!ch) {
        perror("ringo_chan_make");
        return 1;
    }
    for (int v = 1; v <= 3; v++)
        ringo_chan_send(ch, &v);
    printf("unreachable\n");
    return 0;
}
