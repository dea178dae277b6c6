/* buffered.c — a buffered channel (tour "Buffered Channels"), in ringo.
 *
 *     func main() {
 *         ch := make(chan int, 2)
 *         ch <- 1
 *         ch <- 2
 *         fmt.Println(<-ch)
 *         fmt.Println(<-ch)
 *     }
 *
 * Sends to a buffered channel block only when the buffer is full, so one thread can send
 * twice and then receive both values, in the order sent.
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
    int v = 1;
    ringo_chan_send(ch, &v);
    v = 2;
    ringo_chan_send(ch, &v);

    ringo_chan_recv(ch, &v);
    printf("%d\n", v);
    ringo_chan_recv(ch, &v);
    printf("%d\n", v);
    ringo_chan_free(ch);
    return 0;
}
