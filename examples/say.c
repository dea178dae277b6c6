/* say.c — Go's first goroutine (tour "Goroutines"), in ringo.
 *
 *     func say(s string) {
 *         for i := 0; i < 5; i++ {
 *             runtime.Gosched()
 *             fmt.Println(s)
 *         }
 *     }
 *     func main() {
 *         go say("world")
 *         say("hello")
 *     }
 *
 * Two goroutines print five lines each. With several workers the lines interleave in any
 * order. With RINGO_PROCS=1 both goroutines share one worker and ringo_yield hands it to the
 * other one, so the output alternates deterministically: world, hello, world, ...
 *
 * Go's main is itself a goroutine; C's main() is a plain thread. So main() starts Go's main as a
 * goroutine and waits for it. And unlike the Go program (where main returning may cut the
 * "world" goroutine short) this one waits for both goroutines, so the output is always 10 lines.
 */
#include <ringo.h>
#include <stdio.h>

static void say(const char *s)
{
    for (int i = 0; i < 5; i++) {
        ringo_yield(); /* runtime.Gosched(): let the other goroutine run */
        printf("%s\n", s);
    }
}

static void say_world(void *done)
{
    say("world");
    ringo_chan_send(done, NULL); /* a channel of empty values: a pure signal */
}

static void go_main(void *done)
{
    ringo_chan *world_done = ringo_chan_make(0, 0);
    ringo_go(say_world, world_done);
    say("hello");
    ringo_chan_recv(world_done, NULL);
    ringo_chan_free(world_done);
    ringo_chan_send(done, NULL);
}

int main(void)
{
    ringo_chan *done = ringo_chan_make(0, 0);
    if (!done || ringo_go(go_main, done) < 0) {
        perror("say");
        return 1;
    }
    ringo_chan_recv(done, NULL);
    ringo_chan_free(done);
    return 0;
}
